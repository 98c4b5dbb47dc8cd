/** Base class of every failure of the local stack; the message always says what to do next. */
export class LocalStackError extends Error {
  override readonly name: string = 'LocalStackError';
}

/** A tool the local stack needs (java, mvn, python3 with venv) is missing or unusable. */
export class MissingToolError extends LocalStackError {
  override readonly name = 'MissingToolError';
  constructor(
    readonly tool: string,
    readonly hint: string,
  ) {
    super(`${tool} is required by the local stack but could not be run: ${hint}`);
  }
}

/** Installing moto (pip) or Kafka (mvn) failed; the log says why. */
export class InstallError extends LocalStackError {
  override readonly name = 'InstallError';
  constructor(
    readonly component: string,
    readonly logPath: string,
    detail: string,
  ) {
    super(`installing ${component} failed (${detail}); see ${logPath}`);
  }
}

/** A port the stack needs is held by a process that is not ours. */
export class PortTakenError extends LocalStackError {
  override readonly name = 'PortTakenError';
  constructor(
    readonly component: string,
    readonly port: number,
    readonly envVar: string,
    readonly logPath: string,
  ) {
    super(
      `${component}: port 127.0.0.1:${port} is already taken by another process (not started by rowstream). ` +
        `Stop it (e.g. \`ss -ltnp | grep :${port}\` shows who) or choose another port with ${envVar}=<port>. ` +
        `Log: ${logPath}`,
    );
  }
}

/** A component did not become ready in time, or died while starting. */
export class NotReadyError extends LocalStackError {
  override readonly name = 'NotReadyError';
  constructor(
    readonly component: string,
    readonly logPath: string,
    detail: string,
  ) {
    super(`${component} is not ready: ${detail}. See ${logPath}`);
  }
}

/** Provisioning the topology on the emulator failed. */
export class ProvisionError extends LocalStackError {
  override readonly name = 'ProvisionError';
}
