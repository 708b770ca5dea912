// cbloss: class-balanced, focal, cross-entropy and BCE losses with fused gradients.
export { CrossEntropyLoss, type CrossEntropyLossOptions } from './losses/cross-entropy';
export { BCEWithLogitsLoss, type BCEWithLogitsLossOptions } from './losses/bce';
export { FocalLoss, type FocalLossOptions } from './losses/focal';
export { SigmoidFocalLoss, type SigmoidFocalLossOptions } from './losses/sigmoid-focal';
export { PolyLoss, type PolyLossOptions } from './losses/poly';
export { AsymmetricLoss, type AsymmetricLossOptions } from './losses/asymmetric';
export {
  BalancedSoftmaxLoss,
  LDAMLoss,
  type BalancedSoftmaxLossOptions,
  type LDAMLossOptions,
} from './losses/long-tail';
export { logitAdjustment, ldamMargins, type LogitMapOptions } from './losses/logit-map';
export {
  ClassBalancedLoss,
  type ClassBalancedLossOptions,
  type ClassBalancedReduction,
} from './losses/class-balanced';
export { classBalancedWeights } from './weights';
export {
  Loss,
  type Reduction,
  type AnyReduction,
  type LossInput,
  type LossTarget,
  type LossValue,
  type ForwardOptions,
  type DivisorOptions,
  type ForwardBackwardOptions,
  type ForwardBackwardResult,
  type DeviceLossValue,
  type DeviceForwardBackwardOptions,
  type DeviceForwardBackwardResult,
} from './loss';
export {
  backendInfo,
  devices,
  setNumThreads,
  setSimdLevel,
  type BackendInfo,
  type DeviceInfo,
  type Device,
  type SimdLevel,
} from './device';
export { DeviceTensor, type DeviceDtype, type DeviceTensorOptions, type HostArrayByDtype } from './device-tensor';
export { toFloat16Bits, fromFloat16Bits, toBfloat16Bits, fromBfloat16Bits } from './half';
export { pinnedArray, isPinned, type PinnedDtype, type PinnedArrayOptions } from './pinned';
export type { TensorLike } from './inputs';
export type { TfTensor } from './tf';
