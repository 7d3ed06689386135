/** Test helpers for Tessera packages. */
export {};
