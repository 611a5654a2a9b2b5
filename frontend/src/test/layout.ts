/**
 * Grafana's Combobox virtualises its list and sizes it from the layout, which jsdom does not
 * compute: give every element a fixed size while a test suite runs.
 */
export function fakeLayout() {
  const props = ['clientHeight', 'clientWidth', 'offsetHeight', 'offsetWidth'] as const;
  const originals = props.map((prop) => Object.getOwnPropertyDescriptor(HTMLElement.prototype, prop));
  beforeAll(() => {
    for (const prop of props) {
      Object.defineProperty(HTMLElement.prototype, prop, { configurable: true, get: () => 400 });
    }
  });
  afterAll(() => {
    props.forEach((prop, i) => {
      const original = originals[i];
      if (original) {
        Object.defineProperty(HTMLElement.prototype, prop, original);
      }
    });
  });
}
