package p

type Plain interface{ M() }
