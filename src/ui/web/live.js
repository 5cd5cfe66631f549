// The live connection: /api/events as server-sent events. The browser reconnects by itself (the server
// asks for 1 s) and sends the last change it saw, so the server replays what was missed, or says `reset`;
// a stream the browser gave up on is opened again here.

/**
 * handlers: onChange(event), onStream(status), onReservations(), onReset(), onConnection("open" | "down").
 * Returns a function that closes the connection.
 */
export function connectLive(handlers) {
  let source;
  let retry;
  let closed = false;
  const open = () => {
    source = new EventSource("/api/events");
    source.addEventListener("open", () => handlers.onConnection("open"));
    source.addEventListener("error", () => {
      handlers.onConnection("down");
      if (source.readyState === EventSource.CLOSED && !closed) {
        // Refused (the login ended): the page itself answers with the login form.
        fetch("/api/status", { cache: "no-store" }).then((r) => r.status === 401 && location.reload(), () => undefined);
        clearTimeout(retry);
        retry = setTimeout(open, 2000);
      }
    });
    source.addEventListener("change", (m) => handlers.onChange(JSON.parse(m.data)));
    source.addEventListener("stream", (m) => handlers.onStream(JSON.parse(m.data)));
    source.addEventListener("reservations", () => handlers.onReservations());
    source.addEventListener("reset", () => handlers.onReset());
  };
  open();
  return () => {
    closed = true;
    clearTimeout(retry);
    source.close();
  };
}
