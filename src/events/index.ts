export { EventBus } from './bus.js';
export type {
  CloseOptions,
  EmitOptions,
  EventBusOptions,
  EventBusStats,
  OnOptions,
  SubscribeOptions,
} from './bus.js';
export type { AnyBusEvent, BusEvent, EventMap, EventName } from './event.js';
export type { Overflow, SubscriberStats, Subscription } from './sink.js';
export { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';
export type { EventTransport, GroupEntry, TransportEntry, TransportReadOptions } from './transport.js';
