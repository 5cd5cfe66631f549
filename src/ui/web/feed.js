// The recent changes list and the live badge: what the page knows of the stream it follows.
import { h, replace } from "./dom.js";
import { feedItem } from "./panels.js";

const FEED_MAX = 200;

/** Changes newest first, each once (a replay after a reconnection repeats some), at most FEED_MAX. */
export class Feed {
  #list; #count;
  #seen = new Set();

  constructor(list, count) {
    this.#list = list;
    this.#count = count;
  }

  add(events, fresh) {
    const list = this.#list;
    for (const e of events) {
      if (this.#seen.has(e.id)) continue;
      this.#seen.add(e.id);
      list.prepend(feedItem(e, fresh));
    }
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
    const shown = list.querySelectorAll("li[data-id]").length;
    if (shown > 0) list.querySelector(".empty")?.remove();
    else if (!list.querySelector(".empty")) replace(list, h("li", { class: "empty" }, "No allocation or release seen since this controller started"));
    this.#count.textContent = shown > 0 ? `${shown} shown` : "";
  }
}

/**
 * The badge for the page's connection ("connecting", "open", "down") and the controller's store stream
 * ({state, since, error}); returns its mode: "live", "reconnecting", "polling" or "connecting".
 */
export function showLive(badge, text, connection, stream, pollMs) {
  let mode, label;
  if (connection === "connecting") [mode, label] = ["connecting", "connecting…"];
  else if (connection === "down") [mode, label] = ["reconnecting", "controller unreachable: reconnecting…"];
  else if (stream?.state === "reconnecting") {
    [mode, label] = ["reconnecting", `store stream down since ${new Date(stream.since).toLocaleTimeString("en-GB")}: reconnecting…`];
  } else if (stream?.state === "unavailable") [mode, label] = ["polling", `polling every ${pollMs / 1000} s (no change stream on this store)`];
  else [mode, label] = ["live", "live"];
  badge.dataset.state = mode;
  text.textContent = label;
  badge.title = stream?.error ? `last error: ${stream.error}` : "";
  return mode;
}
