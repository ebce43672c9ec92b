// Validates every document of a Kubernetes manifest against the API schema of its kind, offline:
//   npm ci && node validate.mjs ../pollen.yaml
// Exits 1 naming the first document that does not validate.
import fs from "node:fs";
import { parseAllDocuments } from "yaml";

const kinds = {
  "v1/Namespace": ["kubernetes-models/v1", "Namespace"],
  "v1/Service": ["kubernetes-models/v1", "Service"],
  "v1/ConfigMap": ["kubernetes-models/v1", "ConfigMap"],
  "apps/v1/StatefulSet": ["kubernetes-models/apps/v1", "StatefulSet"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1", "Deployment"],
};

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs MANIFEST.yaml");
  process.exit(2);
}
let count = 0;
for (const doc of parseAllDocuments(fs.readFileSync(file, "utf8"))) {
  if (doc.errors.length) {
    console.error(`${file}: not YAML: ${doc.errors[0].message}`);
    process.exit(1);
  }
  const object = doc.toJS();
  if (!object) continue;
  const key = `${object.apiVersion}/${object.kind}`;
  const entry = kinds[key];
  if (!entry) {
    console.error(`${file}: no schema known here for ${key}`);
    process.exit(1);
  }
  const module = await import(entry[0]);
  try {
    new module[entry[1]](object).validate();
  } catch (e) {
    console.error(`${file}: ${key} ${object.metadata?.name}: ${e.message}`);
    process.exit(1);
  }
  count++;
  console.log(`ok  ${key} ${object.metadata?.name}`);
}
console.log(`${count} documents valid`);
