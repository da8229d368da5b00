// Small DOM and formatting helpers. Every text from the server goes in as a
// text node (never as HTML), so names, SQL and values cannot inject markup.

// h('button', {class: 'x', onclick: f}, 'text', child...)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function duration(seconds) {
  if (seconds <= 0) return 'expired';
  const parts = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];
  for (let i = 0; i < parts.length; ++i) {
    const [unit, name] = parts[i];
    if (seconds >= unit) {
      const whole = Math.floor(seconds / unit);
      const next = parts[i + 1];
      const rest = next ? Math.floor((seconds % unit) / next[0]) : 0;
      return rest && next ? `${whole} ${name} ${rest} ${next[1]}` : `${whole} ${name}`;
    }
  }
  return `${seconds} s`;
}

export function ago(iso) {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  return `${duration(s)} ago`;
}

export function time(iso) {
  return h('time', { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

// A SQL value as text: null, numbers, strings, {"$blob": base64}.
export function value(v) {
  if (v === null || v === undefined) return h('span', { class: 'null' }, 'NULL');
  if (typeof v === 'object' && v.$blob !== undefined) return h('span', { class: 'blob' }, `blob (${Math.floor(v.$blob.length * 3 / 4)} bytes)`);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function table(columns, rows, cellOf = value) {
  return h('div', { class: 'scroll' },
    h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((v) => h('td', {}, cellOf(v))))))));
}

// A button that asks once more before acting: the first press arms it for a
// few seconds ("Click again to delete"), the second runs action.
export function confirmButton(label, armedLabel, action, attrs = {}) {
  let armed = null;
  const btn = h('button', { type: 'button', ...attrs, onclick: () => {
    if (armed) {
      clearTimeout(armed);
      armed = null;
      btn.textContent = label;
      btn.classList.remove('armed');
      action();
      return;
    }
    btn.textContent = armedLabel;
    btn.classList.add('armed');
    armed = setTimeout(() => { armed = null; btn.textContent = label; btn.classList.remove('armed'); }, 5000);
  } }, label);
  return btn;
}

// Tabs with the WAI-ARIA keyboard pattern (arrows, Home, End).
export function tabs(names, current, onSelect) {
  const list = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Branch views' });
  const buttons = names.map(([id, label]) => h('button', {
    role: 'tab', type: 'button', id: `tab-${id}`, 'aria-selected': String(id === current),
    'aria-controls': 'tabpanel', tabindex: id === current ? '0' : '-1',
    onclick: () => onSelect(id),
  }, label));
  list.addEventListener('keydown', (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (e.key === 'ArrowRight') j = (i + 1) % buttons.length;
    else if (e.key === 'ArrowLeft') j = (i + buttons.length - 1) % buttons.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = buttons.length - 1;
    if (j === null) return;
    e.preventDefault();
    buttons[j].focus();
    buttons[j].click();
  });
  list.append(...buttons);
  return list;
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input,
           hint ? h('small', { class: 'muted' }, hint) : null);
}
