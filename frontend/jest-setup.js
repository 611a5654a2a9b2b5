// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

import { configure } from '@testing-library/react';

// Async options (the target dropdown) arrive after a 200 ms debounce; on a loaded 2-core machine
// the 1 s default wait is too short.
configure({ asyncUtilTimeout: 5000 });

// jsdom lacks these browser APIs that Grafana's UI components call.
class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
class IntersectionObserverStub {
  root = null;
  rootMargin = '';
  thresholds = [];
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
}
Object.assign(global, { ResizeObserver: ResizeObserverStub, IntersectionObserver: IntersectionObserverStub });

// Grafana measures text on a canvas (e.g. to size the Combobox menu); jsdom has no canvas.
HTMLCanvasElement.prototype.getContext = () => ({
  font: '',
  measureText: (text) => ({ width: text.length * 7 }),
});
