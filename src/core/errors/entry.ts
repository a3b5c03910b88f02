/** One catalogue entry: a short title and what the operator should do next. */
export interface CatalogueEntry {
  /** One line: what went wrong. */
  readonly title: string;
  /** What to do next, addressed to the operator. */
  readonly hint: string;
}
