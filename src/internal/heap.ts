/** An element of an {@link IndexedHeap}: the heap keeps its position in `heapIndex` (-1 when out). */
export interface HeapNode {
  heapIndex: number;
}

/**
 * Binary heap that knows where each element is: insertion, removal of any element and
 * re-positioning after its key changed are all O(log n), and nothing stale is ever left behind.
 * `before(a, b)` is true when `a` must come out before `b`.
 */
export class IndexedHeap<T extends HeapNode> {
  readonly #nodes: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#nodes.length;
  }

  /** The element that comes out first, without removing it. */
  peek(): T | undefined {
    return this.#nodes[0];
  }

  push(node: T): void {
    node.heapIndex = this.#nodes.length;
    this.#nodes.push(node);
    this.#up(node.heapIndex);
  }

  /** Removes `node` if it is in the heap. */
  remove(node: T): void {
    const i = node.heapIndex;
    const nodes = this.#nodes;
    if (i < 0 || nodes[i] !== node) return;
    node.heapIndex = -1;
    const last = nodes.pop() as T;
    if (i === nodes.length) return;
    nodes[i] = last;
    last.heapIndex = i;
    this.#update(i);
  }

  /** Restores order after `node`'s key changed. */
  update(node: T): void {
    const i = node.heapIndex;
    if (i >= 0 && this.#nodes[i] === node) this.#update(i);
  }

  /** Removes every element. */
  clear(): void {
    for (const node of this.#nodes) node.heapIndex = -1;
    this.#nodes.length = 0;
  }

  #update(i: number): void {
    if (i > 0 && this.#before(this.#nodes[i] as T, this.#nodes[(i - 1) >> 1] as T)) this.#up(i);
    else this.#down(i);
  }

  #up(i: number): void {
    const nodes = this.#nodes;
    const node = nodes[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = nodes[p] as T;
      if (!this.#before(node, parent)) break;
      nodes[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    nodes[i] = node;
    node.heapIndex = i;
  }

  #down(i: number): void {
    const nodes = this.#nodes;
    const n = nodes.length;
    const node = nodes[i] as T;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.#before(nodes[c + 1] as T, nodes[c] as T)) c++;
      const child = nodes[c] as T;
      if (!this.#before(child, node)) break;
      nodes[i] = child;
      child.heapIndex = i;
      i = c;
    }
    nodes[i] = node;
    node.heapIndex = i;
  }
}
