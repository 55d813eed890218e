/** One Arrow IPC message after the schema: a dictionary batch or a record batch. */
export interface Frame {
  kind: 'dictionary' | 'batch';
  /** The bare flatbuffer `Message`. */
  header: Buffer;
  /** The message body (8-byte aligned by the sender). */
  body: Buffer;
  appMetadata: Buffer;
  /**
   * The 5-byte gRPC message prefix, then FlightData bytes holding exactly header,
   * app_metadata and body: sent as they are when set (see flight/grpc-internals.ts).
   */
  prefixed?: Buffer;
  rows: number;
}
