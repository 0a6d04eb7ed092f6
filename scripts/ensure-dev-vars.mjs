// Gives `npm start` a working local secret on a fresh clone: copies
// .dev.vars.example to .dev.vars unless the developer already has one.
import { copyFileSync, existsSync } from "node:fs";

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (development secret)");
}
