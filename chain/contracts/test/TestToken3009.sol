// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title TestToken3009
/// @notice FOR TESTS ONLY: a 6-decimal ERC-20 that anyone may mint, with EIP-3009 transfers by
/// signed authorization as USDC (FiatTokenV2) has them, so that provdb's tests settle x402
/// payments on anvil. Its artifact lives in chain/artifacts/test/, apart from the contracts
/// provdb deploys.
///
/// The EIP-712 domain is `EIP712Domain(string name,string version,uint256 chainId,address
/// verifyingContract)` with the token's name and `version()`, no salt: the domain x402 clients
/// sign over. Name and version are constructor arguments, so that a test can deploy a token
/// whose domain is another implementation's test vector.
///
/// An authorization is valid strictly after `validAfter` and strictly before `validBefore`
/// (block timestamps), once per (authorizer, nonce): using or cancelling a nonce spends it.
/// Refusals are the custom errors x402's SDKs recognise by name.
contract TestToken3009 is ERC20, EIP712 {
    /// @notice keccak256 of the EIP-3009 `TransferWithAuthorization` type (what x402 signs).
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice keccak256 of the EIP-3009 `ReceiveWithAuthorization` type.
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice keccak256 of the EIP-3009 `CancelAuthorization` type.
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// The EIP-712 version, also the domain's.
    string private _version;
    /// Authorizer => nonce => used or cancelled.
    mapping(address => mapping(bytes32 => bool)) private _spent;

    /// @notice The block time `now` is not after `validAfter` yet.
    error AuthorizationNotYetValid(uint256 validAfter, uint256 now);
    /// @notice The block time `now` is not before `validBefore` any more.
    error AuthorizationExpired(uint256 validBefore, uint256 now);
    /// @notice `authorizer` has used or cancelled `nonce` already.
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
    /// @notice The signature is not the authorizer's over this authorization.
    error InvalidSignature();
    /// @notice `receiveWithAuthorization` must be called by the payee `to`.
    error CallerNotPayee(address caller, address to);

    /// @notice `authorizer`'s authorization `nonce` moved its tokens.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice `authorizer` cancelled `nonce` before it was used.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    constructor(string memory name_, string memory version_) ERC20(name_, "PTD") EIP712(name_, version_) {
        _version = version_;
    }

    /// @notice 6, as USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice The EIP-712 domain's version.
    function version() external view returns (string memory) {
        return _version;
    }

    /// @notice The EIP-712 domain separator (what FiatTokenV2 exposes).
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Mints `amount` to `to`; open to anyone (a test token has no value).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Whether `authorizer` has used or cancelled `nonce`.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _spent[authorizer][nonce];
    }

    /// @notice Moves `value` from `from` to `to` as `from` signed (v, r, s); anyone may submit it.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        bytes32 digest = _digest(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkEcdsa(from, digest, v, r, s);
        _use(from, to, value, validAfter, validBefore, nonce);
    }

    /// @notice The same with the signature as bytes: 65 bytes r‖s‖v from an account without
    /// code, else whatever the authorizer's ERC-1271 `isValidSignature` accepts.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        bytes32 digest = _digest(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert InvalidSignature();
        _use(from, to, value, validAfter, validBefore, nonce);
    }

    /// @notice Moves `value` from `from` to the caller, who must be `to`, as `from` signed a
    /// `ReceiveWithAuthorization` (so nobody can front-run the payee with it).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (msg.sender != to) revert CallerNotPayee(msg.sender, to);
        bytes32 digest = _digest(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkEcdsa(from, digest, v, r, s);
        _use(from, to, value, validAfter, validBefore, nonce);
    }

    /// @notice Spends `nonce` of `authorizer` unused, as `authorizer` signed.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        _checkEcdsa(authorizer, digest, v, r, s);
        _spend(authorizer, nonce);
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _digest(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)));
    }

    /// Reverts unless (v, r, s) recovers to `signer` (low s and v of 27 or 28 only, as ECDSA
    /// checks them).
    function _checkEcdsa(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) private pure {
        (address recovered, ECDSA.RecoverError error, ) = ECDSA.tryRecover(digest, v, r, s);
        if (error != ECDSA.RecoverError.NoError || recovered != signer) revert InvalidSignature();
    }

    function _use(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce)
        private
    {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore, block.timestamp);
        _spend(from, nonce);
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _spend(address authorizer, bytes32 nonce) private {
        if (_spent[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
        _spent[authorizer][nonce] = true;
    }
}
