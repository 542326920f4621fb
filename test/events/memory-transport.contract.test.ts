import { MemoryTransport } from '../../src/events/memory-transport.js';
import { eventTransportContract } from '../contract/event-transport.suite.js';

eventTransportContract(
  'MemoryTransport: EventTransport contract',
  async ({ maxLength }) => {
    const transport = new MemoryTransport({ maxLength });
    return { a: transport, b: transport, close: () => transport.close() };
  },
  { trimSlack: 0 },
);
