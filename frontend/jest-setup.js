// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

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
