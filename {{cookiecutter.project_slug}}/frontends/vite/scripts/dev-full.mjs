// `npm run dev:full`: the FastAPI backend (../backend) and this frontend's dev
// server together, in one terminal. Ctrl+C stops both; if one exits, so does the other.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const windows = process.platform === "win32";
const backendDir = fileURLToPath(new URL("../../backend/", import.meta.url));
const backendUrl = new URL(process.env.BACKEND_URL || "http://127.0.0.1:8000");
const backendPort = backendUrl.port || "8000";
const uvicornArgs = ["uvicorn", "app.main:app", "--reload", "--host", backendUrl.hostname, "--port", backendPort];

function backendCommand() {
  if (spawnSync("uv", ["--version"], { stdio: "ignore", shell: windows }).status === 0) {
    return ["uv", ["run", ...uvicornArgs]];
  }
  const venvPython = path.join(backendDir, ".venv", windows ? "Scripts/python.exe" : "bin/python");
  const python = existsSync(venvPython) ? venvPython : windows ? "python" : "python3";
  return [python, ["-m", ...uvicornArgs]];
}

const children = [];
let exiting = false;

function start(name, command, args, cwd) {
  const child = spawn(command, args, { cwd, stdio: "inherit", shell: windows, env: process.env });
  child.on("exit", (code, signal) => {
    if (!exiting) {
      console.error(`\n[dev:full] ${name} exited (${signal ?? code}); stopping the other one.`);
      stop(code ?? 1);
    }
  });
  children.push(child);
}

function stop(code) {
  exiting = true;
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  setTimeout(() => process.exit(code), 500).unref();
}

process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

const [command, args] = backendCommand();
console.log(`[dev:full] backend:  ${command} ${args.join(" ")}  (in ${backendDir})`);
start("backend", command, args, backendDir);
console.log("[dev:full] frontend: npm run dev");
start("frontend", "npm", ["run", "dev"], process.cwd());
