// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title ProvenanceRegistry
/// @notice provdb's provenance commitments: Datanets, the ingest batches stored in them (each
/// anchored by the Merkle root of its record ids), and LoRA adapters. The operator writes;
/// anyone reads. Batches are anchored in the order of the database's sequence numbers, so
/// `lastSequence` says how far the chain has caught up.
contract ProvenanceRegistry {
    /// @notice A registered Datanet.
    struct Datanet {
        address owner;
        bytes32 metadataHash;
        uint64 batches;
        uint64 records;
        bool registered;
    }

    /// @notice A registered adapter.
    struct Adapter {
        address owner;
        bytes32 baseModelHash;
        bytes32 trainingDataRoot;
    }

    /// @notice Who may write (the deployer).
    address public immutable operator;
    /// @notice The last database sequence number anchored (0: none).
    uint64 public lastSequence;
    /// @notice Datanet id => Datanet.
    mapping(uint32 => Datanet) public datanets;
    /// @notice Adapter id => Adapter.
    mapping(bytes32 => Adapter) public adapters;

    /// @notice The caller is not the operator.
    error NotOperator(address caller);
    /// @notice The Datanet is already registered.
    error DatanetExists(uint32 datanetId);
    /// @notice The Datanet is not registered.
    error UnknownDatanet(uint32 datanetId);
    /// @notice Batches are anchored in sequence order, without overlap.
    error BatchOutOfOrder(uint64 lastSequence, uint64 firstSequence, uint64 endSequence);
    /// @notice A batch anchors at least one record under a non-zero root.
    error EmptyBatch();
    /// @notice The adapter is already registered.
    error AdapterExists(bytes32 adapterId);

    /// @notice A Datanet was registered.
    event DatanetRegistered(uint32 indexed datanetId, address indexed owner, bytes32 metadataHash);
    /// @notice An ingest batch covering sequence numbers `firstSequence..=lastSequence` was anchored.
    event BatchAnchored(
        uint32 indexed datanetId, uint64 firstSequence, uint64 lastSequence, bytes32 recordsRoot, uint32 count
    );
    /// @notice An adapter was registered.
    event AdapterRegistered(
        bytes32 indexed adapterId, address indexed owner, bytes32 baseModelHash, bytes32 trainingDataRoot
    );

    constructor() {
        operator = msg.sender;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    /// @notice Registers Datanet `datanetId`.
    function registerDatanet(uint32 datanetId, address owner, bytes32 metadataHash) external onlyOperator {
        Datanet storage d = datanets[datanetId];
        if (d.registered) revert DatanetExists(datanetId);
        d.owner = owner;
        d.metadataHash = metadataHash;
        d.registered = true;
        emit DatanetRegistered(datanetId, owner, metadataHash);
    }

    /// @notice Anchors an ingest batch: `count` records under `recordsRoot`, stored at sequence
    /// numbers `firstSequence..=lastSequence` (after every batch anchored before).
    function anchorBatch(uint32 datanetId, uint64 firstSequence, uint64 lastSequence_, bytes32 recordsRoot, uint32 count)
        external
        onlyOperator
    {
        Datanet storage d = datanets[datanetId];
        if (!d.registered) revert UnknownDatanet(datanetId);
        if (firstSequence <= lastSequence || lastSequence_ < firstSequence) {
            revert BatchOutOfOrder(lastSequence, firstSequence, lastSequence_);
        }
        if (count == 0 || recordsRoot == bytes32(0)) revert EmptyBatch();
        lastSequence = lastSequence_;
        d.batches += 1;
        d.records += count;
        emit BatchAnchored(datanetId, firstSequence, lastSequence_, recordsRoot, count);
    }

    /// @notice Registers adapter `adapterId`.
    function registerAdapter(bytes32 adapterId, address owner, bytes32 baseModelHash, bytes32 trainingDataRoot)
        external
        onlyOperator
    {
        if (adapters[adapterId].owner != address(0)) revert AdapterExists(adapterId);
        adapters[adapterId] = Adapter(owner, baseModelHash, trainingDataRoot);
        emit AdapterRegistered(adapterId, owner, baseModelHash, trainingDataRoot);
    }
}
