// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title AttributionDistributor
/// @notice Pays contributors what provdb's attribution ledger owes them. The operator posts each
/// closed epoch in order: the Merkle root of every account's cumulative balance at the epoch's
/// end, and the sum of those balances. Each post funds exactly the new liabilities (the new
/// total minus the previous one), so the contract always holds what can still be claimed.
/// Anyone may submit a claim for an account; it pays `cumulativeAmount - claimed[account]`.
/// @dev The leaf is OpenZeppelin StandardMerkleTree's for `(address, uint256)`:
/// `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`, internal nodes hash sorted
/// pairs; provdb's storage/src/merkle.rs builds the same tree.
contract AttributionDistributor {
    /// @notice Who may post epochs (the deployer).
    address public immutable operator;
    /// @notice The last epoch posted (0: none).
    uint64 public lastEpoch;
    /// @notice The total of the last epoch posted, in wei.
    uint192 public lastTotal;
    /// @notice Epoch number => Merkle root of its cumulative balances.
    mapping(uint256 => bytes32) public roots;
    /// @notice Account => cumulative amount already paid to it.
    mapping(address => uint256) public claimed;

    /// @notice The caller is not the operator.
    error NotOperator(address caller);
    /// @notice Epochs are posted one after the other: `expected` is the only one accepted now.
    error EpochOutOfOrder(uint256 expected, uint256 given);
    /// @notice A root of zero commits to nothing.
    error ZeroRoot();
    /// @notice Cumulative totals never decrease.
    error TotalDecreased(uint256 previous, uint256 given);
    /// @notice A post must fund exactly the new liabilities (`total - lastTotal`).
    error WrongFunding(uint256 expected, uint256 given);
    /// @notice No such epoch has been posted.
    error UnknownEpoch(uint256 epoch);
    /// @notice The proof does not lead from `(account, cumulativeAmount)` to the epoch's root.
    error InvalidProof();
    /// @notice The account has already been paid `claimed` of at most that much.
    error AlreadyClaimed(address account, uint256 claimed);
    /// @notice The payment to the account failed.
    error TransferFailed(address account);

    /// @notice An epoch was posted and `funded` wei came with it.
    event EpochPosted(uint256 indexed epoch, bytes32 root, uint256 total, uint256 funded);
    /// @notice `account` was paid `amount`, bringing its claimed total to `cumulativeAmount`.
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount, uint256 cumulativeAmount);

    constructor() {
        operator = msg.sender;
    }

    /// @notice Posts epoch `epoch` (exactly `lastEpoch + 1`) with its root and total, funded
    /// with `total - lastTotal` wei.
    function postEpoch(uint256 epoch, bytes32 root, uint256 total) external payable {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        uint256 expected = uint256(lastEpoch) + 1;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        if (root == bytes32(0)) revert ZeroRoot();
        uint256 previous = lastTotal;
        if (total < previous || total > type(uint192).max) revert TotalDecreased(previous, total);
        if (msg.value != total - previous) revert WrongFunding(total - previous, msg.value);
        lastEpoch = uint64(epoch);
        lastTotal = uint192(total);
        roots[epoch] = root;
        emit EpochPosted(epoch, root, total, msg.value);
    }

    /// @notice Pays `account` what it is owed by epoch `epoch` and not yet paid.
    /// @param cumulativeAmount the account's cumulative balance in that epoch (its leaf).
    /// @param proof the sibling hashes from the leaf up to the root.
    function claim(uint256 epoch, address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
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
        claimed[account] = cumulativeAmount;
        uint256 amount;
        unchecked {
            amount = cumulativeAmount - already;
        }
        emit Claimed(epoch, account, amount, cumulativeAmount);
        (bool ok, ) = account.call{value: amount}("");
        if (!ok) revert TransferFailed(account);
    }
}
