import { MemoryStore } from '../../src/rate/index.js';
import { rateStoreContract } from '../contract/rate-store.suite.js';

rateStoreContract(
  'MemoryStore: RateStore contract',
  () => {
    const store = new MemoryStore();
    return Promise.resolve({ store, close: () => store.close() });
  },
  { expiry: false },
);
