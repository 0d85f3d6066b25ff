/*
 * mqgate.esm.js - ES module entry point of the browser client library:
 *   import mqgate from '/mqgate.esm.js';
 * It evaluates mqgate.js (a classic script that defines globalThis.mqgate)
 * and re-exports that object; it owns nothing itself.
 */
import './mqgate.js';

const mqgate = globalThis.mqgate;

export default mqgate;
export const connect = mqgate.connect;
export const match = mqgate.match;
