#!/usr/bin/env node
// The `cbloss` command (lib/cli/main.ts, compiled to dist/).
'use strict';
require('../dist/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
