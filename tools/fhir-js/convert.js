// The npm `fhir` package (Lantana FHIR.js) converting both ways, for compare.py.
// usage: node convert.js IN_DIR OUT_DIR
//   X.json     -> OUT_DIR/X.npm.xml   (its jsonToXml of the JSON)
//   X.ours.xml -> OUT_DIR/X.npm.json  (its xmlToJson of kzfhir's XML)
// A conversion that throws writes OUT_DIR/<input name>.error with the message instead.
"use strict";
const fs = require("fs");
const path = require("path");
const { Fhir } = require("fhir");

const fhir = new Fhir();
const [inDir, outDir] = process.argv.slice(2);
for (const name of fs.readdirSync(inDir).sort()) {
  const input = fs.readFileSync(path.join(inDir, name), "utf8");
  let output = null;
  let target = null;
  try {
    if (name.endsWith(".ours.xml")) {
      target = name.replace(/\.ours\.xml$/, ".npm.json");
      output = fhir.xmlToJson(input);
    } else if (name.endsWith(".json")) {
      target = name.replace(/\.json$/, ".npm.xml");
      output = fhir.jsonToXml(input);
    }
  } catch (e) {
    fs.writeFileSync(path.join(outDir, name + ".error"), String((e && e.message) || e));
    continue;
  }
  if (target !== null) fs.writeFileSync(path.join(outDir, target), output);
}
