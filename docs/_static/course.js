// The course website (tools/website.py): click an output figure to see it at full size.
// Figures shrink to the column width on the page; each becomes a link to its PNG (works without JavaScript too),
// and a click opens it at its natural size in an overlay (scroll for wide figures; Esc or a click closes it).
(function () {
  function close(box) { document.removeEventListener('keydown', box.courseKey); box.remove(); }
  function open(src, alt) {
    const box = document.createElement('div');
    box.className = 'course-lightbox';
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-label', 'Figure at full size');
    const bar = document.createElement('div');
    bar.className = 'course-lightbox-bar';
    const link = document.createElement('a');
    link.href = src; link.target = '_blank'; link.textContent = 'open the image';
    bar.append('Figure at full size · ', link, ' · Esc or click to close');
    const img = document.createElement('img');
    img.src = src; img.alt = alt || 'figure at full size';
    box.append(bar, img);
    box.addEventListener('click', function (e) { if (e.target.tagName !== 'A') close(box); });
    box.courseKey = function (e) { if (e.key === 'Escape') close(box); };
    document.addEventListener('keydown', box.courseKey);
    document.body.appendChild(box);
  }
  function wrap() {
    document.querySelectorAll('.cell_output img').forEach(function (img) {
      if (img.closest('a')) return;
      const a = document.createElement('a');
      a.href = img.getAttribute('src');
      a.className = 'course-zoom';
      a.title = 'Click to enlarge';
      img.replaceWith(a);
      a.appendChild(img);
      a.addEventListener('click', function (e) { e.preventDefault(); open(a.href, img.alt); });
      function mark() {
        const shown = img.getBoundingClientRect().width;
        a.classList.toggle('course-shrunk', shown > 0 && img.naturalWidth > 1.05 * shown);
      }
      if (img.complete) mark(); else img.addEventListener('load', mark);
      window.addEventListener('resize', mark);
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wrap); else wrap();
})();
