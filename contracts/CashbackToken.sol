// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Pausable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title CashbackToken (CBK)
/// @notice ERC-20 paid out as shopper cashback. Every mint carries a `mintId` chosen off-chain
///         (derived from the cashback ledger entry), and every clawback a `refId`; the contract
///         remembers both so a replayed request can never move tokens twice.
/// @dev Duplicate handling, and why:
///      - `mint` REVERTS with `MintIdAlreadyUsed`: a single replay is a caller bug or a crash
///        recovery, and the revert surfaces in `eth_estimateGas` before anything is broadcast.
///        The caller looks up the original `CashbackMinted` event by its indexed `mintId`.
///      - `mintBatch` SKIPS used ids (emitting `MintSkipped`): one replayed entry must not sink
///        the other entries that share its transaction.
///      - `clawback` REVERTS with `ClawbackAlreadyApplied`, like `mint`.
///      Pausing stops every balance change: transfers, mints and clawbacks.
contract CashbackToken is ERC20, ERC20Pausable, ERC20Permit, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice mintId => already minted.
    mapping(bytes32 mintId => bool) public mintIdUsed;
    /// @notice refId => clawback already applied.
    mapping(bytes32 refId => bool) public refIdUsed;

    event CashbackMinted(bytes32 indexed mintId, address indexed to, uint256 amount);
    event MintSkipped(bytes32 indexed mintId, address indexed to, uint256 amount);
    event CashbackClawedBack(bytes32 indexed refId, address indexed from, uint256 amount);

    error MintIdAlreadyUsed(bytes32 mintId);
    error ClawbackAlreadyApplied(bytes32 refId);
    error InvalidId();
    error ZeroAmount();
    error LengthMismatch(uint256 recipients, uint256 amounts, uint256 mintIds);

    constructor(address admin, address minter)
        ERC20("Cashback Token", "CBK")
        ERC20Permit("Cashback Token")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        if (minter != address(0)) _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Mints `amount` wei of CBK to `to`, once per `mintId`.
    function mint(address to, uint256 amount, bytes32 mintId) external onlyRole(MINTER_ROLE) {
        if (mintIdUsed[mintId]) revert MintIdAlreadyUsed(mintId);
        _mintOnce(to, amount, mintId);
    }

    /// @notice Mints many entries in one transaction; entries whose `mintId` is already used are
    ///         skipped (and reported with `MintSkipped`), the rest are minted.
    function mintBatch(address[] calldata to, uint256[] calldata amounts, bytes32[] calldata mintIds)
        external
        onlyRole(MINTER_ROLE)
    {
        if (to.length != amounts.length || to.length != mintIds.length) {
            revert LengthMismatch(to.length, amounts.length, mintIds.length);
        }
        for (uint256 i = 0; i < to.length; ++i) {
            if (mintIdUsed[mintIds[i]]) {
                emit MintSkipped(mintIds[i], to[i], amounts[i]);
            } else {
                _mintOnce(to[i], amounts[i], mintIds[i]);
            }
        }
    }

    /// @notice Burns `amount` from `from` when a purchase is refunded, once per `refId`.
    /// @dev No allowance is needed: cashback is issued on the condition that a refund takes it back.
    function clawback(address from, uint256 amount, bytes32 refId) external onlyRole(MINTER_ROLE) {
        if (refId == bytes32(0)) revert InvalidId();
        if (amount == 0) revert ZeroAmount();
        if (refIdUsed[refId]) revert ClawbackAlreadyApplied(refId);
        refIdUsed[refId] = true;
        _burn(from, amount);
        emit CashbackClawedBack(refId, from, amount);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _mintOnce(address to, uint256 amount, bytes32 mintId) private {
        if (mintId == bytes32(0)) revert InvalidId();
        if (amount == 0) revert ZeroAmount();
        mintIdUsed[mintId] = true;
        _mint(to, amount);
        emit CashbackMinted(mintId, to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Pausable) {
        super._update(from, to, value);
    }
}
