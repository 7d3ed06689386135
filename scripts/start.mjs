#!/usr/bin/env node
// `npm start`: the one-command demo. Server and agent are not built yet; until they are, this prints
// what exists and how to try the library.
console.log(`tessera: the server and agent are not there yet (issues 3 and 4).
What works today is the @tessera/spiffe library:
  npm test                                 runs its conformance, property and integration tests
  node packages/spiffe/examples/dist/https-mtls.js   two Node services authenticating each other by SPIFFE ID
  npm run bench                            library benchmarks beside their floors`);
