// The dashboard's page files are embedded in the binary as text (Bun's text loader, `with { type: "text" }`).
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "./web/*.js" {
  const text: string;
  export default text;
}
