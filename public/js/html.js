// HTML built from text the server sends (step names are free text a
// producer chose): every value put into a `html` template is escaped, so
// no value can become markup. The pages set innerHTML only from it.

/** Markup made by `html`: kept as it is when put into another `html` template. */
class Html {
  constructor(markup) {
    this.markup = markup;
  }

  toString() {
    return this.markup;
  }
}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** A value as it goes into a template: markup as is, a list item by item, anything else escaped. */
function piece(value) {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(piece).join("");
  return String(value ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** A tagged template: html`<td>${name}</td>` escapes `name`; lists of `html` are joined. */
export function html(strings, ...values) {
  return new Html(strings.reduce((out, text, i) => out + piece(values[i - 1]) + text));
}
