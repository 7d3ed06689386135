/** X.509 building blocks shared by the server (issuance) and the test CA. */
export {};
