// The page's files, embedded in the binary as text: the dashboard makes no request beyond this server.
import page from "./web/index.html" with { type: "text" };
import style from "./web/style.css" with { type: "text" };
import api from "./web/api.js" with { type: "text" };
import app from "./web/app.js" with { type: "text" };
import dom from "./web/dom.js" with { type: "text" };
import feed from "./web/feed.js" with { type: "text" };
import ip from "./web/ip.js" with { type: "text" };
import live from "./web/live.js" with { type: "text" };
import mapView from "./web/map_view.js" with { type: "text" };
import panels from "./web/panels.js" with { type: "text" };

export interface Asset {
  readonly body: string;
  readonly type: string;
}

const JS = "text/javascript; charset=utf-8";

/** By request path. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", { body: page as unknown as string, type: "text/html; charset=utf-8" }],
  ["/ui/style.css", { body: style, type: "text/css; charset=utf-8" }],
  ["/ui/api.js", { body: api, type: JS }],
  ["/ui/app.js", { body: app, type: JS }],
  ["/ui/dom.js", { body: dom, type: JS }],
  ["/ui/feed.js", { body: feed, type: JS }],
  ["/ui/ip.js", { body: ip, type: JS }],
  ["/ui/live.js", { body: live, type: JS }],
  ["/ui/map_view.js", { body: mapView, type: JS }],
  ["/ui/panels.js", { body: panels, type: JS }],
]);
