export { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';
export type { EventTransport, GroupEntry, TransportEntry, TransportReadOptions } from './transport.js';
