// The key under which a DeviceTensor hands its native buffer to lib/native.ts (kept in its own module
// so that native.ts and device-tensor.ts do not import each other).
export const NATIVE_BUFFER = Symbol('cbloss.nativeBuffer');
