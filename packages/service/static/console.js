// The console's only script (served under a CSP that allows no inline code):
// the live charts of an endpoint page, fed by its server-sent events.

const MAX_POINTS = 120;
const COLORS = ["#1f6feb", "#d29922", "#cf222e"];

/** Draws series (arrays of numbers or nulls) as lines on a canvas, scaled to their maximum. */
function draw(canvas, series) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#d0d7de";
  ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
  let max = 0;
  for (const values of series) for (const v of values) if (v !== null && v > max) max = v;
  if (max === 0) max = 1;
  series.forEach((values, s) => {
    ctx.strokeStyle = COLORS[s % COLORS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (v === null) {
        started = false;
        return;
      }
      const x = (i / (MAX_POINTS - 1)) * (width - 4) + 2;
      const y = height - 2 - (v / max) * (height - 8);
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#57606a";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(String(Number(max.toPrecision(3))), 4, 12);
}

function seconds(v) {
  return v === null ? "—" : v.toFixed(3);
}

function startLive(section) {
  const points = [];
  const chart = (name) => section.querySelector(`canvas[data-chart="${name}"]`);
  const output = (name) => section.querySelector(`output[data-series="${name}"]`);
  const source = new EventSource(section.dataset.live);
  source.onmessage = (event) => {
    points.push(JSON.parse(event.data));
    if (points.length > MAX_POINTS) points.shift();
    const last = points[points.length - 1];
    output("throughput").textContent = last.throughput.toFixed(1);
    output("latency").textContent = `${seconds(last.p50)} / ${seconds(last.p95)} / ${seconds(last.p99)}`;
    output("queued").textContent = String(last.queued);
    output("running").textContent = String(last.running);
    draw(chart("throughput"), [points.map((p) => p.throughput)]);
    draw(chart("latency"), [points.map((p) => p.p50), points.map((p) => p.p95), points.map((p) => p.p99)]);
    draw(chart("queued"), [points.map((p) => p.queued), points.map((p) => p.running)]);
    section.dataset.points = String(points.length);
  };
  source.onerror = () => {
    section.dataset.state = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
  };
  source.onopen = () => {
    section.dataset.state = "open";
  };
}

for (const section of document.querySelectorAll("section[data-live]")) startLive(section);
