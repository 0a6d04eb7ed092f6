/**
 * What an id is: of a session, a player, a recipe or a workflow — UUIDs and
 * similar opaque keys. One rule for the HTTP API, bridged events, tokens'
 * player subjects and the development scripts. No imports, so the scripts
 * load it as it is.
 */

/** An id: 1–64 characters, a letter or digit first. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** The rule, as a refusal says it after the field's name. */
export const ID_RULE = "must be 1-64 characters of letters, digits, '_', '-', '.' or ':'";
