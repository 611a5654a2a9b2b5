// Grafana's icons load SVGs over the network through react-inlinesvg; jsdom has no such network,
// so tests render a plain placeholder that keeps the icon's accessible name.
type InlineSvgProps = {
  src: string;
  title?: string;
  innerRef?: unknown;
  cacheRequests?: boolean;
  [key: string]: unknown;
};

export default function InlineSVG({ src, title, innerRef: _ref, cacheRequests: _cache, ...rest }: InlineSvgProps) {
  const name = src.replace(/^.*\//, '').replace(/\.svg$/, '');
  return <svg id={name} aria-label={title} {...rest} />;
}
