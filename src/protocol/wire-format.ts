// The worker wire's byte format: msgpack for every scalar, array and map, plus private
// extension codes for what one ordered stream (one direction of one channel) says once and then
// refers to. Its encoder (wire-encoder.ts) and decoder (wire-decoder.ts) each keep the same two
// tables, filled by what travels, in order: nothing is shared across threads, and a new channel
// (a worker re-hosted after a crash) starts with empty ones on both ends.
//
// | bytes | meaning |
// |---|---|
// | d4 00 00 | undefined (as msgpackr writes it) |
// | d4 01 i8, d5 01 i16 | interned string number i |
// | c7 n 02 <n utf-8 bytes> | a string, interned: it takes the next slot of the string ring |
// | d4 03 i8, d5 03 i16 | a record of shape i: its values follow, in the shape's key order |
// | c8 n16 04 <keys as msgpack str> | defines the next shape (a record of it follows) |
// | d4 05 00 | every shape forgotten (the encoder's table was full): numbering starts again |
// | c9 n32 06 <msgpackr bytes> | a value only msgpackr knows (a Date, a typed array, a bigint) |
//
// Why: the host sends the same ids (workspace, command, run) and the same event names by the
// thousand; msgpack writes each char by char, every time — 60 % of the encoder's time at 100
// messages a turn. An interned string costs one Map lookup and 3–4 bytes.

export const EXT_UNDEFINED = 0x00;
export const EXT_STRING_REF = 0x01;
export const EXT_STRING_DEF = 0x02;
export const EXT_RECORD = 0x03;
export const EXT_SHAPE_DEF = 0x04;
export const EXT_SHAPES_RESET = 0x05;
export const EXT_MSGPACKR = 0x06;

/** Slots of the string ring: a new string takes the next one, the one it held is forgotten. */
export const STRING_SLOTS = 4096;
/** Strings this long (in UTF-16 units) are interned: shorter ones cost less written out, longer ones are rarely repeated. */
export const MIN_INTERNED = 4;
export const MAX_INTERNED = 64;
/** Shapes numbered before the table starts again; objects with more keys are written as maps. */
export const MAX_SHAPES = 1024;
export const MAX_SHAPE_KEYS = 32;
/** Nodes of the encoder's key tree (maps keyed by ids make a new shape each): past it, the table starts again. */
export const MAX_SHAPE_NODES = 8192;
