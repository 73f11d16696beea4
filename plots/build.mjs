// Writes build/template.html: the page of `dvc plots show` with vega, vega-lite and vega-embed
// inlined from node_modules (the exact versions of package-lock.json), so that the page draws
// its vega-lite plots without a network. Run by `make plots` after `npm ci`.
//
// DVC (dvc_render.html) fills the template by plain string replacement: `{plot_divs}` takes the
// plots, `{refresh_tag}` the auto-refresh meta tag when a caller asks for one (DVCLive), and
// `{scripts}` would take its vega renderer's <script src="https://cdn..."> tags, so this page
// has no `{scripts}`: the libraries are inlined instead.
import { readFileSync, renameSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "build", "template.html");
const libraries = [
  ["vega", "build/vega.min.js"],
  ["vega-lite", "build/vega-lite.min.js"],
  ["vega-embed", "build/vega-embed.min.js"],
];
const placeholders = ["{plot_divs}", "{refresh_tag}", "{scripts}"];

function script(name, file) {
  const version = JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"))).version;
  let code = readFileSync(join(here, "node_modules", name, file), "utf8");
  for (const p of placeholders) {
    if (code.includes(p)) throw new Error(`${name}/${file} contains ${p}: DVC would replace it`);
  }
  // No source map to look for beside the page; `</script` would end the inline element early.
  code = code.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "\n").replaceAll("</script", "<\\/script");
  return `<!-- ${name} ${version} (npm) -->\n<script type="text/javascript">\n${code}</script>`;
}

const page = `<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
${libraries.map(([name, file]) => script(name, file)).join("\n")}
<script type="text/javascript">
// DVC calls vegaEmbed(element, spec) with no options: draw SVG rather than vega-embed's default
// canvas, so that the plots stay sharp when zoomed and their marks are elements of the page.
const embedPlot = vegaEmbed;
vegaEmbed = (element, spec, options) => embedPlot(element, spec, { renderer: "svg", ...options });
</script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
`;

mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, page);
renameSync(`${out}.tmp`, out); // never a half-written template
console.log(`wrote ${out} (${(page.length / 1e6).toFixed(1)} MB)`);
