// The Kubernetes errors, apart from the code that raises them, so that the one error mapping can
// know them without loading the client on every plugin start.

/** A kubeconfig or in-cluster setup that cannot be used; `source` is the file or "in-cluster". */
export class KubeConfigError extends Error {
  override name = "KubeConfigError";
  constructor(readonly source: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * The API could not answer: unreachable, too slow, refused our credentials or TLS, failed, or said something
 * we cannot use. Callers should try again later, never act as if the object did not exist.
 */
export class KubeUnavailableError extends Error {
  override name = "KubeUnavailableError";
  constructor(
    readonly server: string,
    message: string,
    /** HTTP status when the server answered. */
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
