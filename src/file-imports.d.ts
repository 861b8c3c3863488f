// `import x from "...ext" with { type: "file" }` yields the file's path (embedded in the compiled binary).
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*.css" {
  const path: string;
  export default path;
}
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  const path: string;
  export default path;
}
// `import x from "...tsv" with { type: "text" }` yields the file's text (embedded in the compiled binary).
declare module "*.tsv" {
  const text: string;
  export default text;
}
declare module "*.ps1" {
  const text: string;
  export default text;
}
