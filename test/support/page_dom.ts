// The few DOM shapes the browser tests' page functions use. Those functions run in the page (playwright
// sends their source), and the project type-checks without the DOM library, so each test file declares
// `document` with these types: `declare const document: PageDocument;`.

export interface PageElement {
  readonly dataset: Readonly<Record<string, string | undefined>>;
  readonly textContent: string | null;
  readonly innerText: string;
  readonly hidden: boolean;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { readonly length: number };
}

export interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { readonly length: number };
  getElementById(id: string): PageElement | null;
}
