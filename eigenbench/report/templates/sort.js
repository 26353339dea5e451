(() => {
  const key = (tr, col) => {
    const td = tr.cells[col];
    const raw = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim();
    if (raw === "") return null;
    const n = Number(raw);
    return Number.isNaN(n) ? raw.toLowerCase() : n;
  };
  const cmp = (x, y) => (typeof x === "number" && typeof y === "number")
    ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
  document.querySelectorAll("table.sortable").forEach((table) => {
    const heads = Array.from(table.tHead.rows[0].cells);
    heads.forEach((th, col) => {
      const sort = () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows, (tr, i) => [key(tr, col), i, tr]);
        rows.sort((a, b) => (a[0] === null || b[0] === null)
          ? (a[0] === null) - (b[0] === null) || a[1] - b[1]
          : (asc ? cmp(a[0], b[0]) : cmp(b[0], a[0])) || a[1] - b[1]);
        body.append(...rows.map((r) => r[2]));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
})();
