/** tessera-server (work in progress). */
export {};
