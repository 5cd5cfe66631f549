// A network configuration the plugin cannot use. `field` is the JSON path users look for
// ("ipam.ranges[0][1].rangeStart"), so every message can point at the line to fix.

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly field: string, message: string, options?: ErrorOptions) {
    super(`Invalid ${field}: ${message}`, options);
  }
}

/** The config was not JSON at all (CNI code 6 rather than 7). */
export class DecodeError extends Error {
  override name = "DecodeError";
}
