#!/usr/bin/env node
// Bin shim: npm links this file at install time; the code it runs is built by `npm run build`.
import "../dist/cli.js";
