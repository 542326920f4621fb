import { MemoryTransport } from '../../src/events/index.js';
import { eventBusTransportContract } from '../contract/event-bus-transport.suite.js';

eventBusTransportContract('EventBus over MemoryTransport', () => {
  const log = new MemoryTransport();
  return Promise.resolve({ a: log, b: log, close: () => log.close() });
});
