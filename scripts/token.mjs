// Mints a local token for development and tests:
//   npm run token -- --player <player_id> [--ttl <seconds>]
//   npm run token -- --service [--ttl <seconds>]
//   npm run token -- --operator [--name <who>] [--ttl <seconds>]   (watch and read anything, change nothing)
// The token is printed alone on the last line of stdout. The secret comes from
// JWT_SECRET in the environment, else .dev.vars, else .dev.vars.example; the
// token names the key (kid) JWT_KEY_ID says, as the service signs.
import { signJwt } from "../src/auth/jwt.ts";
import { commandLine, idOption } from "./command-line.mjs";
import { readKeyId, readSecret } from "./dev-secret.mjs";

const USAGE =
  "npm run token -- --player <player_id> | --service | --operator [--name <who>] [--ttl <seconds>]";

const { values } = commandLine(
  {
    options: {
      player: { type: "string", about: "a player's token: watches that player's streams" },
      service: { type: "boolean", default: false, about: "crafting-service's token: the HTTP API" },
      operator: {
        type: "boolean",
        default: false,
        about: "an operator's token: watches and reads anything, changes nothing",
      },
      name: { type: "string", default: "operator", about: "the operator's name (its sub)" },
      ttl: { type: "string", default: "3600", about: "seconds until it expires" },
    },
  },
  USAGE,
  "Mints a local token, signed with the development secret (.dev.vars), and prints it\nalone on the last line of stdout.",
);
if ([Boolean(values.player), values.service, values.operator].filter(Boolean).length !== 1) {
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}
idOption(values, "player", USAGE);
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error("--ttl must be a positive whole number of seconds");
  process.exit(2);
}
const now = Math.floor(Date.now() / 1000);
const [sub, scope] = values.service
  ? ["crafting-service", "service"]
  : values.operator
    ? [values.name, "operator"]
    : [values.player, "player"];
const claims = { sub, scope, iat: now, exp: now + ttl };
console.log(await signJwt(claims, readSecret(), readKeyId()));
