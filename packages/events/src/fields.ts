import Type from "typebox";

/**
 * Field formats shared by every event payload. Money and block numbers travel as decimal
 * strings: JSON numbers are floats, and a wei amount does not fit one.
 */
export const Uuid = Type.String({ pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description: "lower-case UUID" });
/** 0x + 40 hex, EIP-55 checksummed by the producer. */
export const Address = Type.String({ pattern: "^0x[0-9a-fA-F]{40}$", description: "EIP-55 checksummed address" });
/** A positive whole number of wei, in decimal, below 2^256. */
export const AmountWei = Type.String({ pattern: "^[1-9][0-9]{0,77}$", description: "wei, decimal string, > 0" });
export const BlockNumber = Type.String({ pattern: "^[0-9]{1,20}$", description: "block number, decimal string" });
export const Bytes32 = Type.String({ pattern: "^0x[0-9a-f]{64}$", description: "32 bytes, lower-case 0x-hex" });
export const TxHash = Bytes32;
/** A stable, machine-readable reason such as "REVERTED" or "RETRIES_EXHAUSTED". */
export const Reason = Type.String({ pattern: "^[A-Z][A-Z0-9_]{0,63}$" });
export const Message = Type.String({ maxLength: 1000 });
