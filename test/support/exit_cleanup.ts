// Last-resort clean-up when the test process exits before afterAll ran (a Ctrl-C, a crash): synchronous
// tasks run from process.on("exit"). test/support/etcd.ts turns SIGINT, SIGTERM and SIGHUP into an exit.
const tasks = new Set<() => void>();
let installed = false;

/** Runs `task` at exit unless the returned function is called first (the regular clean-up did it). */
export function onExit(task: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on("exit", () => {
      for (const t of tasks) {
        try {
          t();
        } catch {}
      }
    });
  }
  tasks.add(task);
  return () => tasks.delete(task);
}
