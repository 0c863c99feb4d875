package slurm

import (
	"errors"
	"time"
)

// Observer hears of every Slurm command once it has ended (or could not start): its name
// (sbatch, squeue, scancel, scontrol), how long it took, and its error, classified (nil when
// it exited 0; see ErrorClassOf). It never sees arguments, the environment or the script. It
// must be quick and must not block: metrics count with it.
type Observer func(cmd string, took time.Duration, err error)

// ErrorClassOf is the class of an error a Client returned, or that an Observer was given:
// ClassPermanent, ClassNotFound, ClassTransientAmbiguous, ClassTransient; ClassUnknown for
// nil or an error that is not a classified Slurm failure (a request refused before any
// command ran).
func ErrorClassOf(err error) ErrorClass {
	switch {
	case err == nil:
		return ClassUnknown
	case errors.Is(err, ErrPermanent):
		return ClassPermanent
	case errors.Is(err, ErrNotFound):
		return ClassNotFound
	case IsAmbiguous(err):
		return ClassTransientAmbiguous
	case errors.Is(err, ErrTransient):
		return ClassTransient
	}
	return ClassUnknown
}
