// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice FOR TESTS ONLY: an OpenZeppelin ERC-20 that anyone may mint, so that provdb's tests
/// run the AttributionDistributor in ERC-20 mode. Its artifact lives in chain/artifacts/test/,
/// apart from the contracts provdb deploys.
contract TestToken is ERC20 {
    constructor() ERC20("provdb test token", "PTT") {}

    /// @notice Mints `amount` to `to`; open to anyone (a test token has no value).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
