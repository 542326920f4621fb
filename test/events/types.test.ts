// Compile-time contract of the typed bus: these lines are checked by `npm run typecheck`
// (`@ts-expect-error` fails the build when the line it guards compiles), and run as a test so a
// change that makes them throw is seen too.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { EventBus, type BusEvent } from '../../src/events/index.js';

interface Events {
  'job.done': { id: string };
  'agent.updated': { name: string; busy: boolean };
}

it('event names and payloads are typed by the event map', async () => {
  const bus = new EventBus<Events>();
  bus.on('job.done', ({ id }) => void id.toUpperCase());
  // @ts-expect-error an event name the map does not have
  bus.on('job.gone', () => undefined);
  await bus.emit('job.done', { id: '1' });
  // @ts-expect-error the payload of another event
  await bus.emit('job.done', { name: 'x', busy: true }).catch(() => undefined);
  // @ts-expect-error a misspelt name
  await bus.emit('job.dnoe', { id: '1' }).catch(() => undefined);
  await bus.emitBatch('agent.updated', [{ name: 'a', busy: false }]);
  bus.onAny((event) => {
    // The union is discriminated by `type`.
    if (event.type === 'agent.updated') assert.equal(typeof event.payload.busy, 'boolean');
    else assert.equal(typeof event.payload.id, 'string');
  });
  const iter = bus.subscribe('agent.updated');
  const next = bus.once('job.done');
  await bus.emit('job.done', { id: '2' });
  const { id }: { id: string } = await next;
  assert.equal(id, '2');
  const recent: BusEvent<Events, 'job.done'>[] = bus.history('job.done');
  assert.equal(recent.length, 3, 'the mistyped emit still ran: types are compile-time only');
  iter.unsubscribe();
  await bus.close();
});
