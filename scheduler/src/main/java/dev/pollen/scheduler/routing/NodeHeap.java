package dev.pollen.scheduler.routing;

import java.util.Arrays;

/** A binary min-heap of graph nodes keyed by distance, with decrease-key: Dijkstra's queue without boxing. */
final class NodeHeap {
    private final int[] heap;        // heap position -> node
    private final int[] position;    // node -> heap position, or -1
    private final double[] key;      // node -> distance
    private int size;

    NodeHeap(int nodes) {
        heap = new int[nodes];
        position = new int[nodes];
        key = new double[nodes];
        Arrays.fill(position, -1);
    }

    boolean isEmpty() {
        return size == 0;
    }

    void push(int node, double distance) {
        pushOrDecrease(node, distance);
    }

    void pushOrDecrease(int node, double distance) {
        if (position[node] == -2) {
            return;   // settled: with non-negative costs its distance is final
        }
        key[node] = distance;
        int i = position[node];
        if (i < 0) {
            i = size++;
            heap[i] = node;
            position[node] = i;
        }
        siftUp(i);
    }

    int pop() {
        int top = heap[0];
        position[top] = -2;   // settled
        size--;
        if (size > 0) {
            heap[0] = heap[size];
            position[heap[0]] = 0;
            siftDown(0);
        }
        return top;
    }

    private void siftUp(int i) {
        int node = heap[i];
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (key[heap[parent]] <= key[node]) {
                break;
            }
            heap[i] = heap[parent];
            position[heap[i]] = i;
            i = parent;
        }
        heap[i] = node;
        position[node] = i;
    }

    private void siftDown(int i) {
        int node = heap[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) {
                break;
            }
            if (child + 1 < size && key[heap[child + 1]] < key[heap[child]]) {
                child++;
            }
            if (key[heap[child]] >= key[node]) {
                break;
            }
            heap[i] = heap[child];
            position[heap[i]] = i;
            i = child;
        }
        heap[i] = node;
        position[node] = i;
    }
}
