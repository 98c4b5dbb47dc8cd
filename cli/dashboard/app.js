// The local dashboard page: polls /api/snapshot and redraws. Plain browser JavaScript (served as is, no
// build step); every value from the API goes in through textContent, never as HTML, because object
// keys and reasons are user data.
/* global Chart */

const POLL_MS = 1500;
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#f778ba', '#39c5cf', '#ff7b72'];

const $ = (id) => document.getElementById(id);
const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 10) return `${s.toFixed(1)}s`;
  const r = Math.round(s);
  if (r < 60) return `${r}s`;
  const m = Math.floor(r / 60);
  if (m < 60) return `${m}m ${String(r % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}
function fmtUsd(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '$0';
  return v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`;
}
function fmtMs(v) {
  return v === null || v === undefined ? '–' : `${v < 10 ? v.toFixed(1) : nf.format(v)} ms`;
}
function timeLabel(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function progressCell(job) {
  const td = document.createElement('td');
  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('div');
  fill.className = 'fill';
  const pct = job.percent === null ? 0 : job.percent;
  fill.style.width = `${pct}%`;
  const label = document.createElement('div');
  label.className = 'pct';
  label.dataset.testid = 'job-percent';
  label.textContent = job.percent === null ? '…' : `${pct.toFixed(1)}%`;
  bar.append(fill, label);
  td.append(bar);
  return td;
}

function renderJobs(jobs) {
  const body = $('jobs');
  body.replaceChildren();
  $('no-jobs').hidden = jobs.length > 0;
  for (const j of jobs) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'job-row';
    tr.dataset.jobId = j.jobId;
    tr.dataset.rowsDone = String(j.rowsDone);
    tr.dataset.status = j.status;
    const running = j.status === 'RUNNING' || j.status === 'PLANNED';
    tr.append(
      cell(j.jobId),
      cell(j.status.replaceAll('_', ' ').toLowerCase(), `status s-${j.status}`),
      progressCell(j),
      cell(
        `${nf.format(j.rowsDone)} / ${j.totalRows === null ? '?' : nf.format(j.totalRows)}${j.progressSource === 'metrics' ? ' (live)' : ''}`,
      ),
      cell(running && j.rowsPerSecond ? `${nf.format(j.rowsPerSecond)}/s` : '–'),
      cell(
        running
          ? fmtDuration(j.etaSeconds)
          : j.durationSeconds !== null
            ? `took ${fmtDuration(j.durationSeconds)}`
            : '–',
      ),
      cell(nf.format(j.rowsRejected)),
      cell(`${fmtUsd(j.costUsd)}${j.costSource === 'local estimate' ? ' (est.)' : ''}`),
      cell(j.reason ? `${j.sourceUri} — ${j.reason}` : j.sourceUri, 'object'),
    );
    body.append(tr);
  }
}

function lineChart(canvas, yTitle) {
  return new Chart(canvas, {
    type: 'line',
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: false },
      scales: {
        x: {
          type: 'linear',
          ticks: { color: '#8b98a5', callback: (v) => timeLabel(v), maxTicksLimit: 6 },
          grid: { color: '#222c36' },
        },
        y: {
          beginAtZero: true,
          title: { display: true, text: yTitle, color: '#8b98a5' },
          ticks: { color: '#8b98a5' },
          grid: { color: '#222c36' },
        },
      },
      plugins: { legend: { labels: { color: '#e6edf3', boxWidth: 12 } } },
      // Points stay visible: a job's first minutes have only a few metric flushes to draw.
      elements: { point: { radius: 2 }, line: { borderWidth: 2, tension: 0 } },
    },
  });
}

let throughputChart = null;
let latencyChart = null;

function renderCharts(s) {
  throughputChart ??= lineChart($('c-throughput'), 'rows/s');
  latencyChart ??= lineChart($('c-latency'), 'ms');
  const names = Object.keys(s.throughput).slice(-COLORS.length);
  throughputChart.data.datasets = names.map((jobId, i) => ({
    label: jobId,
    data: s.throughput[jobId].map(([x, y]) => ({ x, y })),
    borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length],
  }));
  latencyChart.data.datasets = [
    {
      label: 'p50',
      data: s.latency.series.map(([x, p50]) => ({ x, y: p50 })),
      borderColor: COLORS[0],
      backgroundColor: COLORS[0],
    },
    {
      label: 'p99',
      data: s.latency.series.map(([x, , p99]) => ({ x, y: p99 })),
      borderColor: COLORS[6],
      backgroundColor: COLORS[6],
    },
  ];
  // A fixed time window (first point, at most 15 min back, to now): with one point chart.js would
  // otherwise invent a meaningless x range.
  const end = Date.parse(s.generatedAt);
  for (const chart of [throughputChart, latencyChart]) {
    const xs = chart.data.datasets.flatMap((d) => d.data.map((p) => p.x));
    const first = xs.length ? Math.min(...xs) : end - 60_000;
    chart.options.scales.x.min = Math.max(end - 15 * 60_000, Math.min(first, end - 30_000) - 2000);
    chart.options.scales.x.max = end;
  }
  throughputChart.update('none');
  latencyChart.update('none');
}

function renderTiles(s) {
  const running = s.jobs.filter((j) => j.status === 'RUNNING');
  $('t-running').textContent = String(running.length);
  const rate = running.reduce((a, j) => a + (j.rowsPerSecond ?? 0), 0);
  $('t-rate').textContent = running.length ? `${nf.format(rate)}/s` : '–';
  $('t-p50').textContent = fmtMs(s.latency.p50);
  $('t-p99').textContent = fmtMs(s.latency.p99);
  const errors = $('t-errors');
  errors.textContent = nf.format(s.totals.errors);
  errors.className = `value${s.totals.errors > 0 ? ' bad' : ''}`;
  const rejects = s.jobs.reduce((a, j) => a + j.rowsRejected, 0);
  const rej = $('t-rejects');
  rej.textContent = nf.format(rejects);
  rej.className = `value${rejects > 0 ? ' warn' : ''}`;
  const cost = s.jobs.reduce((a, j) => a + (j.costUsd ?? 0), 0);
  $('t-cost').textContent = fmtUsd(cost);
  if (s.cost.monthToDateUsd !== null) $('t-cost').title = `month to date: ${fmtUsd(s.cost.monthToDateUsd)}`;
}

function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
}

function linkCell(href, text) {
  const td = document.createElement('td');
  if (href) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    a.target = '_blank';
    a.rel = 'noopener';
    td.append(a);
  } else td.textContent = '–';
  return td;
}

function renderAlarms(alarms) {
  const body = $('alarms');
  body.replaceChildren();
  $('no-alarms').hidden = alarms.length > 0;
  for (const a of alarms) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'alarm-row';
    tr.dataset.alarm = a.id ?? a.name;
    tr.dataset.state = a.state;
    tr.title = a.reason ?? '';
    tr.append(
      cell(a.state.replaceAll('_', ' '), `st st-${a.state.split(' ')[0]}`),
      cell(ago(a.since)),
      cell(a.id ?? a.name),
      cell(a.severity ?? '–'),
      cell(a.valueText),
      linkCell(a.runbook, 'runbook'),
    );
    body.append(tr);
  }
}

function renderBudget(cost) {
  const mtd = cost.monthToDateUsd;
  const pct = cost.budgetUtilizationPercent;
  const fill = $('budget-fill');
  if (mtd === null || mtd === undefined) {
    $('budget-text').textContent = 'no figure yet';
    fill.style.width = '0%';
    return;
  }
  const budget = pct ? (mtd * 100) / pct : null;
  $('budget-text').textContent =
    budget === null
      ? `${fmtUsd(mtd)} (no budget set)`
      : `${fmtUsd(mtd)} of ${fmtUsd(budget)} · ${pct.toFixed(0)}%`;
  $('budget-text').dataset.testid = 'budget';
  fill.style.width = `${Math.min(100, pct ?? 0)}%`;
  fill.className = `fill${pct >= 100 ? ' bad' : pct >= 80 ? ' warn' : ''}`;
}

function renderInventory(inv) {
  const body = $('inventory');
  body.replaceChildren();
  if (!inv) {
    $('inventory-note').textContent = 'No inventory yet (dims-publisher).';
    return;
  }
  $('inventory-note').textContent = `snapshot ${ago(inv.takenAt)} (dims-publisher)`;
  for (const m of inv.metrics) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'inventory-row';
    const labels = Object.values(m.labels ?? {}).join(' ');
    const name = m.name.replace(/^Inventory/, '');
    const value =
      m.unit === 'Bytes'
        ? `${nf.format(m.value / 1024)} KiB`
        : m.unit === 'Seconds'
          ? fmtDuration(m.value)
          : nf.format(m.value);
    tr.append(cell(labels ? `${name} ${labels}` : name), cell(value));
    body.append(tr);
  }
}

async function tick() {
  const live = $('live');
  try {
    const res = await fetch('/api/snapshot', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const s = await res.json();
    $('stage').textContent = s.stage;
    renderTiles(s);
    renderJobs(s.jobs);
    renderCharts(s);
    if (s.alarms) renderAlarms(s.alarms);
    renderBudget(s.cost);
    if (s.inventory !== undefined) renderInventory(s.inventory);
    $('errors').textContent = s.errors.join(' · ');
    live.textContent = `live · updated ${timeLabel(Date.parse(s.generatedAt))}`;
    live.className = 'meta';
  } catch (error) {
    // A dashboard that silently freezes is worse than none: say that the data is stale.
    live.textContent = `not updating (${error.message}); retrying`;
    live.className = 'meta stale';
  } finally {
    setTimeout(tick, POLL_MS);
  }
}

tick();
