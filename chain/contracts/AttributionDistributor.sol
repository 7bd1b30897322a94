// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC3009} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";

/// @title AttributionDistributor
/// @notice Holds what callers of provdb paid in and pays contributors what provdb's attribution
/// ledger owes them, never more than came in.
///
/// Money comes in two ways, both counted in `totalDeposited`:
/// - `deposit` / `depositToken`: a caller prepays for answers. Each deposit gets the next
///   `depositId` and a `Deposited` event naming the account to credit; provdb credits that
///   account once per (chain id, contract, deposit id).
/// - `depositWithAuthorization`: the same deposit, paid by an EIP-3009 authorization the payer
///   signed to this contract (an x402 payment), submitted by anyone; it credits the signer.
/// - `creditTransfer`: tokens that reached this contract by a plain transfer instead (an x402
///   authorization an outside facilitator, or anyone, submitted straight to the token), credited
///   by the operator to their sender, once per `Transfer` log, and never beyond what the
///   contract holds outside its count.
/// - `fund` / `fundToken`: backing for credits provdb granted off chain (an operator's card
///   payments); it credits no account.
///
/// Money goes out through claims. The operator posts each closed epoch in order: the Merkle root
/// of every account's cumulative payout at the epoch's end, their sum (`total`) and the head of
/// the hash-chained ledger the epoch closed over. A post whose total exceeds `totalDeposited` is
/// refused, and a claim that would bring `totalClaimed` above the last posted total is refused,
/// so anyone can check on chain that `totalClaimed <= lastTotal <= totalDeposited`.
///
/// The asset is fixed at deploy: ETH when `token` is address(0), else that ERC-20. A deposit's
/// amount is what the contract's balance grew by (a token that takes a fee on transfer credits
/// what arrived). Everything paid in stays below 2^128 wei (provdb's ledger counts in `u128`).
/// @dev The leaf is OpenZeppelin StandardMerkleTree's for `(address, uint256)`:
/// `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`, internal nodes hash sorted
/// pairs; provdb's storage/src/merkle.rs builds the same tree.
contract AttributionDistributor is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Who may post epochs (the deployer).
    address public immutable operator;
    /// @notice The ERC-20 paid in and out; address(0) when the asset is ETH.
    IERC20 public immutable token;
    // Two slots hold every counter. A claim reads and writes the first only (what is owed
    // and what was paid out); a deposit the second; posting an epoch both.
    /// @notice The total of the last epoch posted (cumulative payouts owed), in wei.
    uint128 public lastTotal;
    /// @notice Everything paid out by claims, in wei.
    uint128 public totalClaimed;
    /// @notice The last epoch posted (0: none).
    uint64 public lastEpoch;
    /// @notice The id the next deposit gets (also the number of deposits so far).
    uint64 public nextDepositId;
    /// @notice Everything paid in: deposits and funding, in wei.
    uint128 public totalDeposited;
    /// @notice Epoch number => Merkle root of its cumulative balances.
    mapping(uint256 => bytes32) public roots;
    /// @notice Epoch number => the ledger head (hash of the last ledger entry) it closed over.
    mapping(uint256 => bytes32) public ledgerHeads;
    /// @notice Account => cumulative amount already paid to it.
    mapping(address => uint256) public claimed;
    /// @notice `Transfer` log (keccak256(abi.encode(txHash, logIndex))) => credited by
    /// `creditTransfer`.
    mapping(bytes32 => bool) public transferCredited;

    /// @notice The caller is not the operator.
    error NotOperator(address caller);
    /// @notice Epochs are posted one after the other: `expected` is the only one accepted now.
    error EpochOutOfOrder(uint256 expected, uint256 given);
    /// @notice A root of zero commits to nothing.
    error ZeroRoot();
    /// @notice Cumulative totals never decrease.
    error TotalDecreased(uint256 previous, uint256 given);
    /// @notice An epoch may not owe more than was paid in: `total` exceeds `totalDeposited`.
    error EpochExceedsDeposits(uint256 total, uint256 totalDeposited);
    /// @notice No such epoch has been posted.
    error UnknownEpoch(uint256 epoch);
    /// @notice The proof does not lead from `(account, cumulativeAmount)` to the epoch's root.
    error InvalidProof();
    /// @notice The account has already been paid `claimed` of at most that much.
    error AlreadyClaimed(address account, uint256 claimed);
    /// @notice Paying `amount` would bring the claims' sum above the last posted total.
    error ClaimsExceedPosted(uint256 amount, uint256 totalClaimed, uint256 lastTotal);
    /// @notice The payment to the account failed.
    error TransferFailed(address account);
    /// @notice This distributor takes another asset: `token` (address(0): ETH only).
    error WrongAsset(address token);
    /// @notice Nothing came in.
    error ZeroAmount();
    /// @notice Paying in `amount` would bring `totalDeposited` to 2^128 wei or more.
    error AmountTooLarge(uint256 amount, uint256 totalDeposited);
    /// @notice A deposit must name the account it credits.
    error ZeroAccount();
    /// @notice The token moved `received` for an authorization of `value`.
    error AuthorizedAmountNotReceived(uint256 value, uint256 received);
    /// @notice The transfer `transferRef` names was credited already.
    error TransferAlreadyCredited(bytes32 transferRef);
    /// @notice Only `uncounted` of the token is held outside deposits and funding.
    error AmountNotHeld(uint256 amount, uint256 uncounted);

    /// @notice Deposit `depositId` of `amount` credits `account`; `from` paid it.
    event Deposited(uint256 indexed depositId, address indexed account, address indexed from, uint256 amount);
    /// @notice `from` paid in `amount` that credits no account (backing for off-chain credits).
    event Funded(address indexed from, uint256 amount);
    /// @notice Deposit `depositId` credits the plain transfer `transferRef` (see `creditTransfer`).
    event TransferCredited(uint256 indexed depositId, bytes32 indexed transferRef);
    /// @notice An epoch was posted with its root, total and the ledger head it closed over.
    event EpochPosted(uint256 indexed epoch, bytes32 root, uint256 total, bytes32 ledgerHead);
    /// @notice `account` was paid `amount`, bringing its claimed total to `cumulativeAmount`.
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount, uint256 cumulativeAmount);

    /// @param asset the ERC-20 paid in and out, or address(0) for ETH.
    constructor(address asset) {
        operator = msg.sender;
        token = IERC20(asset);
    }

    /// @notice Prepays `msg.value` wei for `account` (ETH mode).
    /// @return depositId the deposit's id, also in its `Deposited` event.
    function deposit(address account) external payable returns (uint256 depositId) {
        if (address(token) != address(0)) revert WrongAsset(address(token));
        if (account == address(0)) revert ZeroAccount();
        _countIn(msg.value);
        depositId = nextDepositId++;
        emit Deposited(depositId, account, msg.sender, msg.value);
    }

    /// @notice Prepays `amount` of the token for `account`, taken from the caller (who approved
    /// this contract for it) (ERC-20 mode).
    /// @return depositId the deposit's id, also in its `Deposited` event.
    function depositToken(address account, uint256 amount) external nonReentrant returns (uint256 depositId) {
        if (account == address(0)) revert ZeroAccount();
        uint256 received = _pull(amount);
        depositId = nextDepositId++;
        emit Deposited(depositId, account, msg.sender, received);
    }

    /// @notice Settles `from`'s EIP-3009 `TransferWithAuthorization` of `value` tokens to this
    /// contract as a deposit for `from` (ERC-20 mode, the token implementing EIP-3009): an x402
    /// payment. Anyone may submit it and pays only the gas: the signature fixes the payer, the
    /// payee (this contract) and the amount, so the sender can neither redirect the money nor
    /// credit another account, and the token spends the nonce, so it settles once.
    /// @dev The token's refusals (`AuthorizationAlreadyUsed`, `AuthorizationExpired`,
    /// `InvalidSignature`, `ERC20InsufficientBalance`...) bubble up unchanged. The balance must
    /// grow by exactly `value`: what the payer signed is what is credited.
    /// @return depositId the deposit's id, also in its `Deposited` event.
    function depositWithAuthorization(
        address from,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 depositId) {
        if (address(token) == address(0)) revert WrongAsset(address(0));
        if (from == address(0)) revert ZeroAccount();
        if (value == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        IERC3009(address(token)).transferWithAuthorization(
            from, address(this), value, validAfter, validBefore, nonce, v, r, s
        );
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != value) revert AuthorizedAmountNotReceived(value, received);
        _countIn(received);
        depositId = nextDepositId++;
        emit Deposited(depositId, from, from, received);
    }

    /// @notice Credits `account` with `amount` of the token that reached this contract by a
    /// plain transfer, not a deposit: an x402 authorization submitted straight to the token (by
    /// an outside facilitator, or by anyone who saw the payload), or a transfer. Only the
    /// operator, who reads the token's `Transfer` logs to find them and credits each to its
    /// sender (ERC-20 mode).
    /// @param transferRef the log, `keccak256(abi.encode(txHash, logIndex))`: credited once.
    /// @dev `amount` must be held outside the count: at most
    /// `balanceOf(this) - (totalDeposited - totalClaimed)`, so even a wrong operator cannot
    /// credit money that is not here, and `totalDeposited` stays what came in.
    /// @return depositId the deposit's id, also in its `Deposited` and `TransferCredited` events.
    function creditTransfer(address account, uint256 amount, bytes32 transferRef)
        external
        returns (uint256 depositId)
    {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        if (address(token) == address(0)) revert WrongAsset(address(0));
        if (account == address(0)) revert ZeroAccount();
        if (transferCredited[transferRef]) revert TransferAlreadyCredited(transferRef);
        uint256 counted = uint256(totalDeposited) - totalClaimed;
        uint256 held = token.balanceOf(address(this));
        uint256 uncounted = held > counted ? held - counted : 0;
        if (amount > uncounted) revert AmountNotHeld(amount, uncounted);
        transferCredited[transferRef] = true;
        _countIn(amount);
        depositId = nextDepositId++;
        emit Deposited(depositId, account, account, amount);
        emit TransferCredited(depositId, transferRef);
    }

    /// @notice Pays in `msg.value` wei that credits no account (ETH mode).
    function fund() external payable {
        if (address(token) != address(0)) revert WrongAsset(address(token));
        _countIn(msg.value);
        emit Funded(msg.sender, msg.value);
    }

    /// @notice Pays in `amount` of the token, taken from the caller, crediting no account
    /// (ERC-20 mode).
    function fundToken(uint256 amount) external nonReentrant {
        uint256 received = _pull(amount);
        emit Funded(msg.sender, received);
    }

    /// @notice Posts epoch `epoch` (exactly `lastEpoch + 1`) with its root, its total (at most
    /// `totalDeposited`) and the ledger head it closed over.
    function postEpoch(uint256 epoch, bytes32 root, uint256 total, bytes32 ledgerHead) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        uint256 expected = uint256(lastEpoch) + 1;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        if (root == bytes32(0)) revert ZeroRoot();
        uint256 previous = lastTotal;
        if (total < previous) revert TotalDecreased(previous, total);
        if (total > totalDeposited) revert EpochExceedsDeposits(total, totalDeposited);
        lastEpoch = uint64(epoch);
        // total <= totalDeposited < 2^128
        lastTotal = uint128(total);
        roots[epoch] = root;
        ledgerHeads[epoch] = ledgerHead;
        emit EpochPosted(epoch, root, total, ledgerHead);
    }

    /// @notice Pays `account` what it is owed by epoch `epoch` and not yet paid.
    /// @param cumulativeAmount the account's cumulative balance in that epoch (its leaf).
    /// @param proof the sibling hashes from the leaf up to the root.
    function claim(uint256 epoch, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 root = roots[epoch];
        if (root == bytes32(0)) revert UnknownEpoch(epoch);
        bytes32 node;
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, cumulativeAmount)
            mstore(0x00, keccak256(0x00, 0x40))
            node := keccak256(0x00, 0x20)
        }
        for (uint256 i; i < proof.length; ) {
            bytes32 sibling = proof[i];
            assembly ("memory-safe") {
                switch lt(sibling, node)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
            unchecked {
                ++i;
            }
        }
        if (node != root) revert InvalidProof();
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert AlreadyClaimed(account, already);
        uint256 amount;
        unchecked {
            amount = cumulativeAmount - already;
        }
        uint256 paid = totalClaimed + amount;
        if (paid > lastTotal) revert ClaimsExceedPosted(amount, totalClaimed, lastTotal);
        claimed[account] = cumulativeAmount;
        // paid <= lastTotal < 2^128
        totalClaimed = uint128(paid);
        emit Claimed(epoch, account, amount, cumulativeAmount);
        if (address(token) == address(0)) {
            (bool ok, ) = account.call{value: amount}("");
            if (!ok) revert TransferFailed(account);
        } else {
            token.safeTransfer(account, amount);
        }
    }

    /// Counts `amount` in: nonzero, creditable, and added to `totalDeposited`.
    function _countIn(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        uint256 sum = totalDeposited + amount;
        if (sum > type(uint128).max) revert AmountTooLarge(amount, totalDeposited);
        totalDeposited = uint128(sum);
    }

    /// Takes `amount` of the token from the caller and counts in what arrived.
    function _pull(uint256 amount) private returns (uint256 received) {
        if (address(token) == address(0)) revert WrongAsset(address(0));
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        received = token.balanceOf(address(this)) - before;
        _countIn(received);
    }
}
